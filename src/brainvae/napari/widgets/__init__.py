"""One small dock widget per concern."""
