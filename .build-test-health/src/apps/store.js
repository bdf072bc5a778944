export class AppStoreError extends Error {
    code = 'APP_STORE_UNAVAILABLE';
}
