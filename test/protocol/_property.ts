// Runs a fast-check property as one tap assertion: fast-check shrinks a failure to its
// smallest counterexample, which becomes the failure message.
import fc from 'fast-check';

interface Assertions {
  pass(message: string): void;
  fail(message: string): void;
}

export function holds<Ts>(t: Assertions, name: string, property: fc.IRawProperty<Ts>, params: fc.Parameters<Ts> = {}): void {
  try {
    fc.assert(property, params);
    t.pass(name);
  } catch (err) {
    t.fail(`${name}\n${err instanceof Error ? err.message : String(err)}`);
  }
}
