export const localProvider = { name: 'local' } as unknown as import('../provider.js').Provider;
