export * from './types';
export * from './runFolder';
