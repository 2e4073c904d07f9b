"""AWS Lambda handlers. Each module is self-contained: the asset root is this directory."""
