"""The checks `kubehop check` runs: skew, support, drift, packages, APIs, workloads, hosts."""
