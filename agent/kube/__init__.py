"""A thin wrapper around the kubernetes client for what the agent needs of the API server."""
