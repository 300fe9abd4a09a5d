// Unit tests of the front-end logic (src/logic/*: no JupyterLab imports, so plain node + ts-jest).
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/src'],
  testMatch: ['**/__tests__/**/*.spec.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: { target: 'ES2018', module: 'commonjs', strict: true, esModuleInterop: true, types: ['jest'], lib: ['DOM', 'ES2018', 'ES2020.Intl'] }, diagnostics: true }]
  }
};
