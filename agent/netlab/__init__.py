"""Network labs for tests and benchmarks: namespaces, veth, and a link with a set delay."""
