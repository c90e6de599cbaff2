"""Dataset ingestion: read dataset folders into a manifest and validate it (no Kedro import)."""
