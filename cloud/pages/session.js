// The signed-in session every page of the cloud shares (served beside each page as session.js,
// loaded before its app.js). A person logs in with their login and password: the cloud answers
// with an HttpOnly cookie this script never sees, and the browser sends it with every request of
// this origin. During the first set-up, before any ops account exists, the shared ops token can
// stand in: taken once from #token=... (a fragment never reaches the server), kept in this tab's
// sessionStorage and sent in the Authorization header only.
;(() => {
  /** 401: nobody is logged in (or the session ended): the page asks to log in */
  class Refused extends Error {}
  /** 403: logged in, but this is not theirs to see or do: the page says so */
  class Forbidden extends Error {}

  let token = sessionStorage.getItem('opsToken') ?? ''

  const useToken = (t) => {
    token = t
    if (t) sessionStorage.setItem('opsToken', t)
    else sessionStorage.removeItem('opsToken')
  }
  const tokenFromHash = () => {
    const t = new URLSearchParams(location.hash.slice(1)).get('token')
    if (!t) return false
    useToken(t)
    history.replaceState(null, '', location.pathname + location.search)
    return true
  }
  tokenFromHash()

  const headers = (extra = {}) => (token ? { authorization: `Bearer ${token}`, ...extra } : { ...extra })

  const said = async (res, fallback) => {
    const body = await res.json().catch(() => null)
    return body?.error?.message ?? fallback
  }

  const api = async (path, { method, body, raw } = {}) => {
    const res = await fetch(path, {
      method: method ?? (body === undefined ? 'GET' : 'POST'),
      headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    if (res.status === 401) throw new Refused(await said(res, 'Log in to continue.'))
    if (res.status === 403) throw new Forbidden(await said(res, 'Not yours to see or do.'))
    if (!res.ok) throw new Error(await said(res, `${path}: ${res.status}`))
    return raw ? res : res.json()
  }

  const logIn = async (login, password) => {
    const res = await fetch('/v1/session', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ login, password }),
    })
    if (!res.ok)
      throw new Refused(
        res.status === 429 ? await said(res, 'Too many tries: wait.') : 'Wrong login or password.',
      )
    useToken('')
    return res.json()
  }

  const logOut = async () => {
    await fetch('/v1/session', { method: 'DELETE', headers: headers() }).catch(() => null)
    useToken('')
  }

  /** Who is logged in ({actor, role, events}), or null. */
  const who = async () => {
    try {
      return await api('/v1/session')
    } catch (err) {
      if (err instanceof Refused) return null
      throw err
    }
  }

  /** Download what `path` answers as a file named `name` (works with the cookie and the token alike). */
  const download = async (path, name) => {
    const res = await api(path, { raw: true })
    const url = URL.createObjectURL(await res.blob())
    const a = document.createElement('a')
    a.href = url
    a.download = name
    document.body.append(a)
    a.click()
    a.remove()
    setTimeout(() => URL.revokeObjectURL(url), 10_000)
  }

  window.GateSession = {
    api,
    headers,
    logIn,
    logOut,
    who,
    useToken,
    tokenFromHash,
    download,
    Refused,
    Forbidden,
  }
})()
