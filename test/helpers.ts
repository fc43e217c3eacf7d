// The helpers live in test/support/. test/chaos/powercut.test.ts still imports them from here: remove
// this file once its imports name test/support/helpers.js.
export * from './support/helpers.js'
