"""The one validated config object: its typed schema, how YAML files and ``--set`` overrides build it,
and how two configs differ."""
