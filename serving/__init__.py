"""Serve the threshold model: TF Serving configs, Docker and Kubernetes launch, embedded server."""
