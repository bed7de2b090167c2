"""tuneloop node agent: exports GPU, NUMA, RDMA, TCP and inference-queue metrics."""
