// Package scalebench measures the stack at many topics on embedded Kafka,
// behind the emulated Lambda API at Lambda's control plane rate, for
// `make bench-scale` (local/cmd/kmig-bench-scale): Reconcile times the
// reconciler's first run, its steady state and the discovery of a new
// topic, and checks every topic's records on the target; Cutover runs the
// cutover through the real state machine at growing topic counts and
// reports its own time, the wall time and the largest state.
package scalebench
