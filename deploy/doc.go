// Package deploy holds no code: it is the home of the deployment files
// (systemd unit, example configuration, container image definition, compose
// file, Kubernetes manifests) and of the test that checks them
// (deploy_test.go), since no container engine or cluster runs where the
// tests do.
package deploy
