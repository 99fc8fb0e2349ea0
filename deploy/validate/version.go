package main

// apiVersion names the Kubernetes release whose schema (k8s.io/api) is compiled in.
const apiVersion = "k8s.io/api v0.34.3 (Kubernetes 1.34)"
