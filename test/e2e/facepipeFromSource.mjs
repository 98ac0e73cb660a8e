// `facepipe` run from the TypeScript sources through tsx, as bin/facepipe.mjs does when the programs
// cannot be compiled: the reference the compiled programs are compared with
// (compiledPrograms.test.ts).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../../cli/main.ts');
await main(process.argv);
