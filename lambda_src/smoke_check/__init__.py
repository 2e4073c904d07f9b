"""The deployment's check that a new model serves: its own smoke test, asked of the live
endpoint (handler.py)."""
