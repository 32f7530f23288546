"""Dataset specs (YAML, one per dataset) and the factory that turns a spec into its asset chain."""
