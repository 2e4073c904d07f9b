"""The CDK stacks and constructs of the IMDB sentiment app (see app.py)."""
