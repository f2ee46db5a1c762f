import { MemoryBuffer } from '../../src/buffer/memory.js';
import { runBufferContract } from './contract.js';

runBufferContract('memory', async (options) => {
  const buffer = new MemoryBuffer(options);
  return { buffer, cleanup: () => buffer.close() };
});
