/**
 * Writes held for a moment: the checkpointer's catch-up (durable.ts) holds the ingest
 * writer's commits and the relay's deletions while it copies the end of the log. `pause()`
 * returns the function that lets them go again (idempotent); holds nest.
 */
export interface Hold {
  pause(): () => void;
  held(): boolean;
  /** Resolves once nothing holds: at once when nothing does. */
  released(): Promise<void>;
}

const FREE: Promise<void> = Promise.resolve();

/** `onRelease` runs each time the last hold is let go. */
export function createHold(onRelease: () => void = () => {}): Hold {
  let holds = 0;
  let waiters: (() => void)[] = [];
  return {
    pause() {
      holds++;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        holds--;
        if (holds > 0) return;
        const ws = waiters;
        waiters = [];
        for (const resolve of ws) resolve();
        onRelease();
      };
    },
    held: () => holds > 0,
    released: () => (holds === 0 ? FREE : new Promise<void>((resolve) => waiters.push(resolve))),
  };
}
