"""Node benchmarks: iperf3 (client, server supervisor, fabric schedule) and perf stat."""
