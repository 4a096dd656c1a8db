package simulate

// Small built-in lists for realistic fake names. Names are ASCII so that emails can be derived from them.
var (
	firstNames = []string{
		"Olivia", "Liam", "Emma", "Noah", "Ava", "Lucas", "Sophia", "Mateo", "Mia", "Ethan",
		"Amara", "Kenji", "Priya", "Omar", "Chloe", "Diego", "Hannah", "Arjun", "Fatima", "Jonas",
		"Grace", "Samuel", "Leila", "Tomas", "Nora", "Isaac", "Yuki", "Elena", "Marcus", "Zara",
		"Daniel", "Ingrid", "Kwame", "Lucia", "Felix", "Aisha", "Henry", "Sofia", "Ravi", "Maya",
	}
	lastNames = []string{
		"Smith", "Garcia", "Chen", "Okafor", "Muller", "Rossi", "Kowalski", "Nguyen", "Johnson", "Patel",
		"Silva", "Andersen", "Tanaka", "Haddad", "Novak", "Brown", "Fischer", "Costa", "Kim", "Dubois",
		"Murphy", "Larsen", "Ibrahim", "Santos", "Walker", "Moreau", "Sato", "Nowak", "Reyes", "Bianchi",
		"Clarke", "Jansen", "Mensah", "Lopez", "Weber", "Khan", "Olsen", "Yamamoto", "Hughes", "Ortiz",
	}
	companies = []string{
		"Globex", "Initech", "Umbrella Health", "Stark Logistics", "Wayne Foods", "Hooli", "Vandelay Imports",
		"Soylent Labs", "Tyrell Systems", "Cyberdyne Retail", "Aperture Bank", "Wonka Confectionery",
		"Massive Dynamic", "Gringotts Finance", "Oscorp Energy", "Pied Piper", "Dunder Mifflin", "Monarch Travel",
		"Nakatomi Trading", "Blue Sun Freight", "Sirius Telecom", "Gekko Capital", "Acme Hotels", "Virtucon",
	}
	products = []string{
		"Platform licence", "Renewal", "Expansion", "Analytics add-on", "Enterprise upgrade", "Pilot",
		"Support plan", "Onboarding package", "Multi-year agreement", "Seats top-up",
	}
)
