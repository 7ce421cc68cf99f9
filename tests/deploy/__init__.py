"""Deployment artefacts: the systemd unit, the container image and the compose demo stack."""
