"""Linux realization of a bundle: namespaces, mounts, cgroups, seccomp, credentials."""
