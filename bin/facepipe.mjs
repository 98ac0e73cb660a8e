#!/usr/bin/env node
// The `facepipe` command. TypeScript sources run through tsx's loader, so `npm ci` is the only
// set-up step: there is no separate build to forget.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
await main(process.argv);
