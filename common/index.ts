export * from './errors.js';
export * from './log.js';
export * from './clock.js';
export * from './files.js';
