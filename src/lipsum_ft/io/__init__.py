"""Custom Kedro datasets; every write goes to a temporary file or folder first, then is renamed into place."""
