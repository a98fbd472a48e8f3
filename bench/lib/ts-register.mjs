// `node --import ./ts-register.mjs`: runs the benchmark's TypeScript without tsx (see ts-hooks.mjs).
import { register } from 'node:module'

register('./ts-hooks.mjs', import.meta.url)
