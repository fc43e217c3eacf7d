// The helpers live in test/support/. test/chaos/powercut.test.ts still imports them from here: remove
// this file once its imports name test/support/process-helpers.js.
export * from './support/process-helpers.js'
