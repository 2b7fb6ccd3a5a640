"""What a bench run records of its machine, as the result files' unit tests build them."""

MACHINE = {
    "cpu": "CPU",
    "cores": 2,
    "kernel": "6",
    "docker": "20.10",
    "storage_driver": "overlay2",
    "base_image": "base",
    "server_python": "3.11.2",
    "loadgen_python": "3.11.2",
    "uvloop": "0.21.0",
    "ddsketch": "3.0.1",
    "server_cpus": "0",
    "loadgen_cpus": "1",
    "load_average_at_start": [0.1, 0.2, 0.3],
    "load_average_at_end": [0.9, 0.5, 0.4],
}
