export * from './options';
export * from './batchScript';
export * from './scheduler';
export * from './taskState';
export * from './submit';
export * from './status';
