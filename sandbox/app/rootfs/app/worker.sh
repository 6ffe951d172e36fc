# Stand-in for the RQ worker: a long-running process with no port.
while :; do sleep 1; done
