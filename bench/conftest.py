"""The benchmark suite runs the scenario cells; the plugin ships with extractbench."""
