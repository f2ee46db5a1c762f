/**
 * The dispatch sinks live in src/dispatch/ (operations' approve_action dispatches too, and
 * operations may not import agent/). This re-export keeps the loop's `./dispatch.js` import working;
 * delete it once loop.ts imports ../dispatch/dispatch.js.
 */
export * from '../dispatch/dispatch.js';
