/**
 * The firmware's bounded buffer of signed messages that the gateway has not acknowledged
 * yet: messages made while offline and messages in flight when a connection dropped. A
 * message leaves it only on PUBACK. When it is full the oldest message is dropped and
 * counted, as RAM-limited firmware must do; what remains is resent after a reconnect with
 * its original bytes, so with its original seq and timestamp.
 */

export interface Pending {
  readonly topic: string;
  /** The signed COSE_Sign1, exactly as it will be (re)sent. */
  readonly bytes: Uint8Array;
  readonly seq: number;
  readonly ts: number;
  /** Set while a PUBLISH for it is outstanding on the current connection. */
  inFlight: boolean;
  /** Set once it has been published at least once (a later PUBLISH is a resend). */
  sentOnce: boolean;
}

export interface Ring {
  readonly capacity: number;
  readonly size: number;
  /** Messages dropped because the buffer was full (oldest first). */
  readonly dropped: number;
  /** Appends; drops and returns the oldest entry when full. */
  push(item: Pending): Pending | undefined;
  /** Removes `item` (acknowledged); false when it was already dropped. */
  remove(item: Pending): boolean;
  /** Entries oldest first. */
  values(): IterableIterator<Pending>;
  /** Marks every entry as not in flight (the connection they were sent on is gone). */
  resetInFlight(): void;
}

/**
 * A ring over a fixed array. Removal of an acknowledged entry is by identity; acks nearly
 * always arrive for the oldest entries, so removal scans from the head and compacts.
 */
export function createRing(capacity: number): Ring {
  if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError('ring capacity must be a positive integer');
  let items: (Pending | undefined)[] = new Array<Pending | undefined>(capacity);
  let head = 0;
  /** Slots from head to tail, holes included. */
  let size = 0;
  /** Entries that are still present. */
  let live = 0;
  let dropped = 0;

  const at = (i: number): Pending | undefined => items[(head + i) % capacity];

  function compactHead(): void {
    while (size > 0 && items[head] === undefined) {
      head = (head + 1) % capacity;
      size -= 1;
    }
  }

  /** Removes holes left by out-of-order acks so `size` counts live entries only. */
  function compactAll(): void {
    const live: Pending[] = [];
    for (let i = 0; i < size; i++) {
      const it = at(i);
      if (it !== undefined) live.push(it);
    }
    items = new Array<Pending | undefined>(capacity);
    live.forEach((it, i) => (items[i] = it));
    head = 0;
    size = live.length;
  }

  return {
    capacity,
    get size() {
      return live;
    },
    get dropped() {
      return dropped;
    },
    push(item) {
      let evicted: Pending | undefined;
      if (size === capacity) compactAll();
      if (size === capacity) {
        evicted = items[head];
        items[head] = undefined;
        head = (head + 1) % capacity;
        size -= 1;
        live -= 1;
        dropped += 1;
        compactHead();
      }
      items[(head + size) % capacity] = item;
      size += 1;
      live += 1;
      return evicted;
    },
    remove(item) {
      for (let i = 0; i < size; i++) {
        const idx = (head + i) % capacity;
        if (items[idx] === item) {
          items[idx] = undefined;
          live -= 1;
          compactHead();
          return true;
        }
      }
      return false;
    },
    *values() {
      for (let i = 0; i < size; i++) {
        const it = at(i);
        if (it !== undefined) yield it;
      }
    },
    resetInFlight() {
      for (let i = 0; i < size; i++) {
        const it = at(i);
        if (it !== undefined) it.inFlight = false;
      }
    },
  };
}
