package main

// apiVersion names the Kubernetes release whose schema (k8s.io/api) is compiled in.
const apiVersion = "k8s.io/api v0.34.13 (Kubernetes 1.34)"
