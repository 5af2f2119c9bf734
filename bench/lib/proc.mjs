// Measures a server from the outside, through /proc: CPU of the whole process (all threads,
// user + system) and its resident memory. Linux only.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

let ticksPerSecond;
function clockTicks() {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/**
 * CPU seconds the process has used so far, in nanoseconds resolution: the sum of every thread's
 * on-CPU time from /proc/<pid>/task/<tid>/schedstat. (Node's threads live as long as the process;
 * a thread that exited would drop out of the sum.) Falls back to the 10 ms ticks of /proc/<pid>/stat.
 */
export function cpuSeconds(pid) {
  try {
    let ns = 0;
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // the thread ended between readdir and read
      }
    }
    if (ns > 0) return ns / 1e9;
  } catch {
    // no schedstat (kernel without CONFIG_SCHED_INFO)
  }
  return statCpuSeconds(pid);
}

/** utime + stime of every thread, dead ones included, in clock ticks (usually 10 ms). */
function statCpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks();
}

function statusKiB(pid, field) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  if (m === null) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}

/** Resident set size now, in KiB. */
export const rssKiB = (pid) => statusKiB(pid, 'VmRSS');
/** The kernel's high-water mark of the resident set since the process started, in KiB. */
export const peakRssKiB = (pid) => statusKiB(pid, 'VmHWM');
