"""What the crash drill (drills/) and the benchmarks (bench/) share, so that both drive servers and workers alike."""
