"""One module per resource: health, devices (and kits), measurements, predictors, searches."""
