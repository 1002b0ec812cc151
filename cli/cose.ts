/**
 * `edgegw cose ...`: COSE tools for other teams (firmware, cloud). Filled in by the
 * protocol work (issue 2).
 */
import type { Command } from 'commander';

export function registerCose(program: Command): void {
  program.command('cose').description('sign, verify and decrypt COSE messages (PROTOCOL.md section 3)');
}
