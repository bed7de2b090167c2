"""The local lab: the whole loop on real HAProxy, nginx, Prometheus and TCP, on loopback."""
