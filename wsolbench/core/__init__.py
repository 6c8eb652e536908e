"""What every layer uses: the run config, run ids, the run record, the results
store, the plugin registry, errors and the environment. Imports no other layer."""
