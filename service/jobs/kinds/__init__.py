"""The built-in job kinds: kit, profile, predictor, search (one module each)."""
