export class StaticAppStore {
    byKey = new Map();
    byId = new Map();
    constructor(apps) {
        this.replace(apps);
    }
    replace(apps) {
        this.byKey = new Map(apps.map((a) => [a.key, a]));
        this.byId = new Map(apps.map((a) => [a.id, a]));
    }
    async findByKey(key) {
        return this.byKey.get(key) ?? null;
    }
    async findById(id) {
        return this.byId.get(id) ?? null;
    }
    async list() {
        return [...this.byId.values()];
    }
    async close() { }
}
