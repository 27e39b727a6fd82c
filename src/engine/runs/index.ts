export * from './types';
export * from './runFolder';
export * from './files';
