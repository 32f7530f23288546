"""Monitoring without Dagster: drift of served or newly ingested data against the champion's reference."""
