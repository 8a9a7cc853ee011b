#!/bin/bash
# watch_and_resume.sh PROGRESS_FILE LOG STALL_S -- CMD...: runs CMD (which resumes from its
# own checkpoints: meta_train.train, meta_train.imitate, meta_train.evaluate), restarting it
# when PROGRESS_FILE, once written by this attempt, has not changed for STALL_S seconds, or
# was never written within 900 s. STALL_S must exceed a resumed run's compile time.
#
# Why (2026-11-28): meta-training on the task mixture hung several times, idle (0% CPU), the
# main thread waiting forever on a small device result. gdb found both XLA CPU pool
# threads inside jaxlib's batched LAPACK QR kernel (QrFactorization -> ParallelBatchMap ->
# BlockingCounter::Wait), each waiting for work queued on the pool they occupy: the noisy
# quadratics' random rotations. Fixed in tasks/data/synthetic.orthonormalize (commit
# "Quadratic tasks: build the random rotation by Gram-Schmidt"); the runs below were made
# before and after that fix, restarting resumes from the last checkpoint.
progress=$1; log=$2; stall=$3; shift 4
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-runs/jax_cache}
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  "$@" >> "$log" 2>&1 &
  pid=$!
  start=$(date +%s)
  while kill -0 $pid 2>/dev/null; do
    sleep 15
    now=$(date +%s); mtime=0
    [ -f "$progress" ] && mtime=$(stat -c %Y "$progress")
    if { [ $mtime -ge $start ] && [ $((now - mtime)) -gt $stall ]; } || \
       { [ $mtime -lt $start ] && [ $((now - start)) -gt 900 ]; }; then
      echo "watch2.sh: stalled, restarting (attempt $attempt) at $(date)" >> "$log"
      kill $pid; sleep 5; kill -9 $pid 2>/dev/null
    fi
  done
  wait $pid && exit 0
done
exit 1
