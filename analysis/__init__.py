"""Reader-side helpers and figures: they read run archives, never run the model."""
