"""echolab on a Docker Swarm: the stack generated from compose.yaml, and a simulated cluster."""
